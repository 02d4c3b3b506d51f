"""puppet: make a video of one person move and talk like another.

An implementation of the puppet-control application of *The Contextual Loss
for Image Transformation with Non-Aligned Data* (Mechrez, Talmi, Zelnik-Manor,
ECCV 2018). Importing this package is cheap: torch, OpenCV and MediaPipe are
imported by the submodules that need them, when a command needs them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
