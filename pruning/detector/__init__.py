"""Offline stage of the face detector (torch): teacher pseudo-labels, composed training images, the tiny
single-stage detector with a 5-landmark head, its training and its evaluation. The runtime's
`squeezerface.detect` runs the exported model without torch."""
