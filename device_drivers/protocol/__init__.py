"""SMP message definitions that TinyOps adds on top of the standard MCUmgr groups."""
