/* Prints the ABI header's table layout as JSON ({"vd_driver_table": {"member": [offset, size], ...}, ...}) so
 * the Python binding's ctypes mirror is checked against the header itself (python/tests/test_binding.py). */
#include <volume_driver/volume_driver.h>

#include <stddef.h>
#include <stdio.h>

#define MEMBER(type, m, sep) printf("\"%s\": [%zu, %zu]%s", #m, offsetof(type, m), sizeof(((type *)0)->m), sep)

int main(void) {
    printf("{\"versions\": [%u, %u], \"vd_host_table\": {", VD_ABI_VERSION_1, VD_ABI_VERSION_2);
    MEMBER(vd_host_table, struct_size, ", ");
    MEMBER(vd_host_table, user_data, ", ");
    MEMBER(vd_host_table, log, "");
    printf(", \"_size\": [0, %zu]}, \"vd_driver_table\": {", sizeof(vd_host_table));
    MEMBER(vd_driver_table, struct_size, ", ");
    MEMBER(vd_driver_table, abi_version, ", ");
    MEMBER(vd_driver_table, driver_name, ", ");
    MEMBER(vd_driver_table, driver_version, ", ");
    MEMBER(vd_driver_table, volume_types, ", ");
    MEMBER(vd_driver_table, create, ", ");
    MEMBER(vd_driver_table, destroy, ", ");
    MEMBER(vd_driver_table, connector_properties, ", ");
    MEMBER(vd_driver_table, connect_volume, ", ");
    MEMBER(vd_driver_table, disconnect_volume, ", ");
    MEMBER(vd_driver_table, extend_volume, ", ");
    MEMBER(vd_driver_table, free_string, ", ");
    MEMBER(vd_driver_table, last_error, ", ");
    MEMBER(vd_driver_table, cleanup, ", ");
    MEMBER(vd_driver_table, create_for_host, ", ");
    MEMBER(vd_driver_table, disk_config, "");
    printf(", \"_size\": [0, %zu]}}\n", sizeof(vd_driver_table));
    return 0;
}
