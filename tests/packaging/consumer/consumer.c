/*
 * A minimal host built against the installed volume driver ABI (iscsi-volume-driver-dev): it dlopens a driver
 * module, negotiates the ABI version, creates a driver with "{}", prints connector_properties and cleans up.
 *
 *   consumer [MODULE]     MODULE defaults to CONSUMER_DRIVER_DIR "/iscsi_volume_driver.so"
 *
 * Exit status: 0 on success, 1 on any failure (reason on stderr).
 */
#include <volume_driver/volume_driver.h>

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#ifndef CONSUMER_DRIVER_DIR
#error "build with -DCONSUMER_DRIVER_DIR=\"...\" (pkg-config driverdir / VolumeDriverAbi_DRIVER_DIR)"
#endif

static void log_line(void *user_data, int32_t level, const char *component, const char *message) {
    (void)user_data;
    fprintf(stderr, "consumer: driver log %d %s: %s\n", (int)level, component ? component : "-",
            message ? message : "");
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : CONSUMER_DRIVER_DIR "/iscsi_volume_driver.so";
    void *module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (module == NULL) {
        fprintf(stderr, "consumer: dlopen %s: %s\n", path, dlerror());
        return 1;
    }
    int rc = 1;
    vd_negotiate_fn negotiate;
    void *symbol = dlsym(module, VOLUME_DRIVER_ENTRY_NAME);
    memcpy(&negotiate, &symbol, sizeof negotiate); /* object pointer -> function pointer, C99-clean */
    if (negotiate == NULL) {
        fprintf(stderr, "consumer: %s has no %s\n", path, VOLUME_DRIVER_ENTRY_NAME);
        goto out_close;
    }

    const vd_host_table host = {sizeof(vd_host_table), NULL, log_line};
    uint32_t version = VD_ABI_VERSION_CURRENT;
    const vd_driver_table *table = NULL;
    int32_t status = negotiate(&version, &host, &table);
    if (status != VD_OK || table == NULL || version != VD_ABI_VERSION_CURRENT ||
        table->struct_size < sizeof(vd_driver_table) || table->abi_version != version) {
        fprintf(stderr, "consumer: negotiation failed (status %d, version %u)\n", (int)status, (unsigned)version);
        goto out_close;
    }
    printf("abi_version %u driver %s %s\n", (unsigned)version, table->driver_name, table->driver_version);

    vd_driver *driver = NULL;
    status = table->create_for_host(&host, "{}", &driver);
    if (status != VD_OK || driver == NULL) {
        fprintf(stderr, "consumer: create failed (status %d): %s\n", (int)status, table->last_error());
        goto out_close;
    }
    char *json = NULL;
    status = table->connector_properties(driver, 0, &json);
    if (status != VD_OK || json == NULL) {
        fprintf(stderr, "consumer: connector_properties failed (status %d): %s\n", (int)status, table->last_error());
    } else {
        printf("connector_properties %s\n", json);
        rc = 0;
    }
    table->free_string(json);
    table->destroy(driver);
out_close:
    dlclose(module);
    return rc;
}
