"""A face, from pixels to the generator's input: landmarks (MediaPipe), the parts they form, the
edge map drawn from them, and the driver path that retargets another person's face onto the target's."""
