/* A driver that only speaks ABI version 3 and newer: an older host must be refused cleanly. */
#include <volume_driver/volume_driver.h>

__attribute__((visibility("default"))) int32_t volume_driver_negotiate(uint32_t *in_out_version,
                                                                       const vd_host_table *host,
                                                                       const vd_driver_table **out_table);

int32_t volume_driver_negotiate(uint32_t *in_out_version, const vd_host_table *host,
                                const vd_driver_table **out_table) {
    (void)host;
    *out_table = 0;
    if (*in_out_version < 3u) {
        *in_out_version = 3u;
        return VD_E_VERSION_REFUSED;
    }
    *in_out_version = 3u;
    return VD_E_NOT_IMPLEMENTED;
}
