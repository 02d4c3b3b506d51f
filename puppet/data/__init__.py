"""What is read and written: videos, a target clip's extraction (crops, landmarks, edge maps), the
target's metadata, which frames training draws, and checkpoints."""
