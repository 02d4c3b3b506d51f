"""A trained model driven by a face: one :class:`~puppet.render.renderer.Renderer` behind ``animate``
(a driver video to an mp4) and ``live`` (a webcam to a window, a file or a virtual camera)."""
