/* Sizes of the SMP server (the MCUmgr params a host reads). */
#ifndef TINYOPS_SMP_CONFIG_H
#define TINYOPS_SMP_CONFIG_H

#ifndef SMP_MTU
#define SMP_MTU 4096 /* largest SMP packet (8-byte header + CBOR) in either direction */
#endif
#ifndef SMP_BUF_COUNT
#define SMP_BUF_COUNT 2 /* MCUmgr params buf_count: frames the UART ring is sized for */
#endif

#endif
