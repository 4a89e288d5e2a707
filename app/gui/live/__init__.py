"""The live dashboard: reader thread → channel store → ring buffers → timed redraw."""
