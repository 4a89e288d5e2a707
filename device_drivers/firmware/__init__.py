"""The TinyOps firmware's host side (Qt-free): fetch its sources, build it, run it in QEMU.

- ``sources``: the manifest (``firmware/manifest.json``), mirror or upstream, hash checks, patches.
- ``build``: one cached build per (CPU, kernels, app) with Debian's arm-none-eabi-gcc.
- ``qemu``: start a build on a QEMU mps2 machine with its UART on a TCP socket.
"""
