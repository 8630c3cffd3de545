/*
 * Drivers whose negotiation answer a host must refuse (or, for SHORT_V1, accept), built once per variant:
 *   TABLE_TOO_SMALL  struct_size smaller than any version-1 table
 *   NULL_SLOT=name   one mandatory function pointer left NULL
 *   BAD_VERSION      answers a version the host never offered
 *   SHORT_V1         a valid version-1 table that ends before the appended `cleanup` slot
 * The functions work just enough for `volume-host drivers` and `cleanup`.
 */
#include <volume_driver/volume_driver.h>

#include <stdlib.h>
#include <string.h>

struct vd_driver {
    int unused;
};

static int32_t create(const char *config_json, vd_driver **out) {
    (void)config_json;
    *out = (vd_driver *)calloc(1, sizeof(vd_driver));
    return *out != 0 ? VD_OK : VD_E_NO_MEMORY;
}
static void destroy(vd_driver *driver) { free(driver); }
static char *dup_string(const char *s) {
    char *out = (char *)malloc(strlen(s) + 1);
    if (out != 0) strcpy(out, s);
    return out;
}
static int32_t connector_properties(vd_driver *driver, uint32_t flags, char **out_json) {
    (void)driver;
    (void)flags;
    *out_json = dup_string("{\"initiator\":\"iqn.2004-10.org.example:test\"}");
    return VD_OK;
}
static int32_t connect_volume(vd_driver *driver, const char *ci, const char *connector, const char *disk_info,
                              uint32_t flags, char **device_info) {
    (void)driver, (void)ci, (void)connector, (void)disk_info, (void)flags;
    *device_info = dup_string("{\"type\":\"network\",\"disk_xml\":\"<disk/>\"}");
    return VD_OK;
}
static int32_t disconnect_volume(vd_driver *driver, const char *ci, const char *device_info, uint32_t flags) {
    (void)driver, (void)ci, (void)device_info, (void)flags;
    return VD_OK;
}
static void free_string(char *s) { free(s); }
static const char *last_error(void) { return "{}"; }

#ifndef NULL_SLOT
#define NULL_SLOT none
#endif
#define SLOT(name) (strcmp(#name, NULL_SLOT_NAME) == 0 ? 0 : name)
#define STR2(x) #x
#define STR(x) STR2(x)
#define NULL_SLOT_NAME STR(NULL_SLOT)

static vd_driver_table table;

__attribute__((visibility("default"))) int32_t volume_driver_negotiate(uint32_t *in_out_version,
                                                                       const vd_host_table *host,
                                                                       const vd_driver_table **out_table);

int32_t volume_driver_negotiate(uint32_t *in_out_version, const vd_host_table *host,
                                const vd_driver_table **out_table) {
    (void)host;
    memset(&table, 0, sizeof table);
    table.struct_size = sizeof(vd_driver_table);
    table.abi_version = VD_ABI_VERSION_1;
    table.driver_name = "bad-table";
    table.driver_version = "0";
    table.volume_types = "iscsi";
    table.create = SLOT(create);
    table.destroy = SLOT(destroy);
    table.connector_properties = SLOT(connector_properties);
    table.connect_volume = SLOT(connect_volume);
    table.disconnect_volume = SLOT(disconnect_volume);
    table.free_string = SLOT(free_string);
    table.last_error = SLOT(last_error);
#if defined(TABLE_TOO_SMALL)
    table.struct_size = 8;
#elif defined(SHORT_V1)
    table.struct_size = (uint32_t)offsetof(vd_driver_table, cleanup);
#endif
#if defined(BAD_VERSION)
    *in_out_version = 7u;
    table.abi_version = 7u;
#else
    *in_out_version = VD_ABI_VERSION_1;
#endif
    *out_table = &table;
    return VD_OK;
}
