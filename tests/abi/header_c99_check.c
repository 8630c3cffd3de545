/* Compiled as strict C99 with -Werror: the ABI header must stand alone in plain C. */
#include <volume_driver/volume_driver.h>

static int32_t negotiate_stub(uint32_t *version, const vd_host_table *host, const vd_driver_table **out) {
    (void)host;
    *out = 0;
    *version = VD_ABI_VERSION_CURRENT;
    return VD_E_VERSION_REFUSED;
}

int volume_driver_header_c99_check(void);
int volume_driver_header_c99_check(void) {
    vd_driver_table table = {0};
    vd_negotiate_fn fn = negotiate_stub;
    table.struct_size = (uint32_t)sizeof table;
    return VD_TABLE_HAS(&table, vd_driver_table, last_error) && VD_TABLE_HAS(&table, vd_driver_table, cleanup) &&
                   (VD_CLEANUP_DRY_RUN & 1u) && fn != 0
               ? VD_OK
               : VD_E_INTERNAL;
}
