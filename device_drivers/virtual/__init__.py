"""The virtual board: a real SMP server on a pseudo-terminal or TCP socket."""
