/* <zircon/process.h>: the process's root VMAR (kvmpager SDK: the VMO aperture at 64 GiB). */
#ifndef SYSROOT_ZIRCON_PROCESS_H_
#define SYSROOT_ZIRCON_PROCESS_H_

#include <zircon/types.h>

__ZX_BEGIN_CDECLS

zx_handle_t zx_vmar_root_self(void);

__ZX_END_CDECLS

#endif
