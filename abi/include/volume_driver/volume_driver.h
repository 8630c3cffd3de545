/*
 * volume_driver.h - the stable C ABI between a compute host and a volume driver module.
 *
 * This header is the whole contract. It is generic: an iSCSI, RBD or NFS driver can implement it, and any
 * compute host can load such a driver with dlopen(). It compiles as C99 and as C++.
 *
 * Shape
 *   A driver module exports exactly one symbol, VOLUME_DRIVER_ENTRY_NAME ("volume_driver_negotiate"), of type
 *   vd_negotiate_fn. The host calls it once with the newest ABI version it speaks and its host table; the driver
 *   answers with the version both will use (min(host, driver)) and its driver table, or refuses.
 *
 * Versioning rules (they never change)
 *   - Every table starts with uint32_t struct_size. A later ABI version only appends members at the end; it
 *     never reorders, removes or retypes a member. A reader must check struct_size before touching a member
 *     that was appended after version 1 (VD_TABLE_HAS).
 *   - Status codes and flag bits only grow; a number is never reused for another meaning.
 *
 * Strings
 *   Every string crossing the ABI is NUL-terminated UTF-8. Inputs are JSON documents (objects) unless said
 *   otherwise. A string returned through a `char **out` parameter is allocated by the driver and must be
 *   released with the driver table's free_string(); never with free(). Pointers passed in are borrowed for the
 *   duration of the call only; the driver keeps no reference to them.
 *
 * Errors
 *   Functions return an int32_t status (VD_OK or one of VD_E_*). After a failure, the calling thread can read
 *   last_error(): a JSON object {"status": N, "code": "...", "message": "...", "argument": "...",
 *   "field": "..."} where argument names the parameter (connection_info, connector, disk_info, device_info,
 *   config, flags) and field is the path inside it (for example "data.target_iqns[1]"); both may be empty.
 *   Messages never contain secrets. No C++ exception ever leaves a driver function.
 *
 * Threading
 *   vd_negotiate_fn may be called more than once and from any thread; it is cheap and returns the same table
 *   for the same negotiated version.
 *   Different driver handles are independent. One handle may be used from several threads at once:
 *   connect_volume / disconnect_volume for different volumes run concurrently; calls for the same volume are
 *   serialised inside the driver. destroy() must not race with any other call on the same handle.
 */
#ifndef VOLUME_DRIVER_VOLUME_DRIVER_H
#define VOLUME_DRIVER_VOLUME_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ABI versions. The host offers the newest it speaks; the driver answers min(host, its newest).
 * Version history (what each version added; a table's layout for an older version never changes):
 *   1  negotiate; create, destroy, connector_properties, connect_volume (disk_info.dev required: device_info
 *      carries disk_xml), disconnect_volume, extend_volume (NULL here), free_string, last_error; cleanup
 *      (appended within version 1). The log callback is the latest negotiation's, copied at create().
 *   2  create_for_host (a host table per handle: each handle logs through its own callback; create() is refused);
 *      connect_volume without a guest (disk_info NULL or without "dev": device_info has no guest part);
 *      disk_config (the libvirt <disk> for a guest device, on demand, pure); extend_volume on the network path.
 *   Within version 2 (no table change): cleanup scans each attach path on its own; a path that cannot scan is
 *      reported, not fatal: the report gains "partial" (bool) and "not_scanned" ([{"path", "code", "reason"}]).
 */
#define VD_ABI_VERSION_1 1u
#define VD_ABI_VERSION_2 2u
#define VD_ABI_VERSION_CURRENT VD_ABI_VERSION_2

/* The one exported symbol of a driver module. */
#define VOLUME_DRIVER_ENTRY_NAME "volume_driver_negotiate"

/* Status codes: stable numbers, only appended to. */
#define VD_OK 0                  /* success */
#define VD_E_INVALID_ARGUMENT 1  /* an input is malformed or out of range; argument/field say which */
#define VD_E_VERSION_REFUSED 2   /* negotiation: no ABI version both sides speak */
#define VD_E_NOT_IMPLEMENTED 3   /* the operation or the chosen attach path is not implemented by this driver */
#define VD_E_UNSUPPORTED 4       /* this host cannot do what was asked (missing capability) */
#define VD_E_CONFIG 5            /* the driver configuration given to create() is invalid */
#define VD_E_AUTH 6              /* authentication (CHAP) was refused by the storage */
#define VD_E_UNREACHABLE 7       /* no portal / target could be reached */
#define VD_E_TIMEOUT 8           /* an operation did not finish within its deadline */
#define VD_E_BACKEND 9           /* libvirt, the iSCSI stack or a host tool reported a failure */
#define VD_E_NOT_FOUND 10        /* the named object does not exist */
#define VD_E_NO_MEMORY 11        /* allocation failed */
#define VD_E_INTERNAL 12         /* a bug in the driver; the message says where */
#define VD_E_INCONSISTENT 13     /* the storage answered, but inconsistently (e.g. paths lead to different LUs) */

/* Log levels of the host's log callback. */
#define VD_LOG_ERROR 1
#define VD_LOG_WARNING 2
#define VD_LOG_INFO 3
#define VD_LOG_DEBUG 4

/* connect_volume flags: none are defined in ABI version 1; any set bit is refused with VD_E_INVALID_ARGUMENT. */

/* disconnect_volume flags (ABI version 1). Unknown bits are refused with VD_E_INVALID_ARGUMENT. */
#define VD_DISCONNECT_FORCE 0x1u          /* go on past a failed flush (data in flight may be lost) */
#define VD_DISCONNECT_IGNORE_ERRORS 0x2u  /* report failed steps in the log but return VD_OK */

/* cleanup flags (ABI version 1, appended). Unknown bits are refused with VD_E_INVALID_ARGUMENT. */
#define VD_CLEANUP_DRY_RUN 0x1u  /* find and report leftovers, change nothing */

/* Opaque driver instance, created by the driver table's create() and released by destroy(). */
typedef struct vd_driver vd_driver;

/*
 * Log callback provided by the host. The driver never writes to stderr or stdout; it logs only through this.
 * May be called from any thread the driver runs on (including the driver's own worker threads) and
 * concurrently, so it must be thread-safe. `message` is borrowed for the duration of the call. May be NULL in
 * the host table, in which case the driver logs nothing.
 */
typedef void (*vd_log_fn)(void *user_data, int32_t level, const char *component, const char *message);

/* What the host gives the driver. Version 1: the driver copies the members during negotiation (the table itself
 * is borrowed for that call only) and each handle uses the host table of the latest negotiation before its
 * create(), so user_data must stay valid until every such handle has been destroyed. Version 2: the host table
 * given to create_for_host() is copied into that handle alone; user_data must stay valid until that handle is
 * destroyed. */
typedef struct vd_host_table {
    uint32_t struct_size;  /* sizeof(vd_host_table) as the host was compiled */
    void *user_data;       /* passed back to log() unchanged */
    vd_log_fn log;         /* may be NULL */
    /* ABI version 1 ends here. Later versions append members below. */
} vd_host_table;

/* What the driver gives the host. Static: owned by the module, valid until dlclose(). */
typedef struct vd_driver_table {
    uint32_t struct_size;  /* sizeof(vd_driver_table) as the driver was compiled */
    uint32_t abi_version;  /* the negotiated version */
    const char *driver_name;     /* e.g. "iscsi" */
    const char *driver_version;  /* the module's own version, e.g. "0.1.0" */
    const char *volume_types;    /* comma-separated driver_volume_type values it serves, e.g. "iscsi" */

    /*
     * Creates a driver instance from config_json (a JSON object; values may be strings, as an INI section
     * yields). On success *out is a new handle, owned by the caller, released with destroy(). On failure *out
     * is set to NULL and last_error() describes why (usually VD_E_CONFIG with the field named).
     */
    int32_t (*create)(const char *config_json, vd_driver **out);

    /* Releases a handle and everything it owns. NULL is accepted and ignored. */
    void (*destroy)(vd_driver *driver);

    /*
     * What this host offers, as a JSON object in the shape of os-brick's connector dict: "initiator", "ip",
     * "host", "multipath" (true only when the host path can really multipath), plus driver-specific keys.
     * flags must be 0. On success *out_json is owned by the caller (free_string()).
     */
    int32_t (*connector_properties)(vd_driver *driver, uint32_t flags, char **out_json);

    /*
     * Makes a volume available to the host (for one guest). connection_info is Cinder's
     * {"driver_volume_type": ..., "data": {...}}; connector is the dict from connector_properties (possibly
     * edited by the caller); disk_info is the guest side the host chose ({"bus": "scsi", "dev": "sdb"}), "bus"
     * defaulting to what "dev" implies. Version 1: "dev" is required (the host owns the guest's device names).
     * Version 2: disk_info may be NULL or lack "dev": everything host-side is done (probing, secret, logins,
     * device) and device_info has no guest part (no "disk_xml"; get one with disk_config()). flags must be 0.
     * On success *device_info (owned by the caller, free_string()) is a JSON object with at least "type"
     * ("network" or "block"), "device_info_version", and, with "dev", "disk_xml" (a libvirt <disk> element for
     * the host to attach); "block" also has "path". The host keeps device_info and hands it back to
     * disconnect_volume, extend_volume and disk_config. On failure nothing the call created is left behind.
     * Connecting an already connected volume returns the same result again.
     */
    int32_t (*connect_volume)(vd_driver *driver, const char *connection_info, const char *connector,
                              const char *disk_info, uint32_t flags, char **device_info);

    /*
     * Undoes connect_volume. device_info is what connect_volume returned (or NULL if the host lost it; the
     * driver then works from connection_info alone). flags is a combination of VD_DISCONNECT_*.
     * Disconnecting a volume that is not connected succeeds.
     */
    int32_t (*disconnect_volume)(vd_driver *driver, const char *connection_info, const char *device_info,
                                 uint32_t flags);

    /*
     * Optional (NULL = unsupported; NULL in version 1): grows the host's view of a volume whose size changed on
     * the storage and reports the size. Version 2: on the network path the LU's capacity is read from the
     * storage (READ CAPACITY 16); the host then resizes the guest's disk (virDomainBlockResize). On the host
     * path it returns VD_E_NOT_IMPLEMENTED (never a wrong size). flags must be 0. On success *new_size_json
     * (caller-owned, free_string()) is {"size_bytes": N}; on failure it is NULL.
     */
    int32_t (*extend_volume)(vd_driver *driver, const char *connection_info, const char *device_info,
                             uint32_t flags, char **new_size_json);

    /* Releases a string this driver returned through a `char **` parameter. NULL is accepted. */
    void (*free_string)(char *str);

    /*
     * The calling thread's last error as a JSON object (see "Errors" above), or "{}" when the last call on this
     * thread succeeded. Owned by the driver; valid until the calling thread's next call into this driver.
     */
    const char *(*last_error)(void);

    /*
     * Optional (NULL = unsupported; appended within version 1: check VD_TABLE_HAS(table, vd_driver_table,
     * cleanup) and non-NULL before calling). Finds what this driver left behind on the host after a crash of
     * the host process between connect and disconnect, and removes it: objects the driver can recognise as its
     * own (for example libvirt secrets under its own usage names) that nothing in use references any more (no
     * domain's live or persistent disk XML). Objects still referenced are kept and reported as kept.
     * Meant for host service start, when no connect_volume of this host is in flight: an object a concurrent
     * connect has just created and not yet attached looks unused. Domains libvirt does not know cannot be
     * seen: a transient domain saved to a file (virsh save) references nothing until it is restored, so its
     * objects are removed and the restore fails; restore such domains first (a persistent domain's managed
     * save keeps its persistent XML, which is read). flags: VD_CLEANUP_* bits (VD_CLEANUP_DRY_RUN:
     * report only). A driver may keep several kinds of objects (the iSCSI driver: one per attach path) and
     * scans each on its own: a part that cannot be scanned (e.g. libvirt unreachable for the objects it
     * references) is reported as not scanned, with why, and nothing of it is touched, while the other parts are
     * cleaned up. Returns VD_OK when at least one part was scanned, even if removing some object failed: the
     * report says so per object ("action": "failed") and in "failed"; "partial": true and "not_scanned" (one
     * {"path", "code", "reason"} per part not scanned) say that the report covers only the parts scanned.
     * When no part could be scanned nothing is removed and an error is returned with last_error(). On VD_OK
     * *report_json (caller-owned, free_string()) is a JSON object: {"dry_run": bool, "partial": bool,
     * "not_scanned": [...], "found": N, "removed": N, "kept": N, "failed": N, "items": [{"kind", "name",
     * "action": "removed"|"would_remove"|"kept"|"failed"|"reported", "reason", ...}], ...}; on failure
     * *report_json is NULL. Never contains a secret value.
     */
    int32_t (*cleanup)(vd_driver *driver, uint32_t flags, char **report_json);

    /* ABI version 1 ends here. Later versions append members below. */

    /*
     * Version 2. Creates a driver instance as create() does, logging through `host` (its log and user_data are
     * copied into this handle only; the table is borrowed for the call; NULL: the handle logs nothing). In a
     * version 2 table create() is refused with VD_E_INVALID_ARGUMENT: use this. *out as for create().
     */
    int32_t (*create_for_host)(const vd_host_table *host, const char *config_json, vd_driver **out);

    /*
     * Version 2. The libvirt <disk> element for one guest device of a connected volume. Pure: no I/O, no
     * libvirt call; safe from any thread, any number of times (spawn, reboot, migration XML). connection_info is
     * the one connect_volume was given (CHAP passwords in it are not used); device_info what connect_volume
     * returned (any device_info_version, also from a version 1 connect); disk_info the guest side:
     * "dev" (required), "bus", "unit" (<address type='drive' controller='0' bus='0' target='0' unit=N>),
     * "type" ("disk" or "lun": SCSI passthrough, device='lun'), "boot_index" (<boot order=N>). From
     * connection_info: <shareable/> when data.multiattach is true, <blockio> from data.logical_block_size /
     * data.physical_block_size, <readonly/> for access_mode "ro", serial, discard, iotune; cache/io from the
     * driver config. Unknown disk_info keys are ignored; bad values fail with the field named. flags must be 0.
     * On success *disk_xml (caller-owned, free_string()) is the <disk> element; on failure it is NULL.
     */
    int32_t (*disk_config)(vd_driver *driver, const char *connection_info, const char *device_info,
                           const char *disk_info, uint32_t flags, char **disk_xml);

    /* ABI version 2 ends here. */
} vd_driver_table;

/* True when `table` (a pointer to a struct beginning with struct_size) is large enough to contain `member`. */
#define VD_TABLE_HAS(table, type, member) \
    ((table)->struct_size >= (uint32_t)(offsetof(type, member) + sizeof(((type *)0)->member)))

/*
 * The entry point, exported as VOLUME_DRIVER_ENTRY_NAME.
 *   in_out_version: in, the newest ABI version the host speaks; out, the version both will use, or (on
 *                   VD_E_VERSION_REFUSED) the newest version the driver speaks, so the host can report both.
 *   host:           the host table (see vd_host_table for its lifetime); must not be NULL.
 *   out_table:      receives the static driver table; NULL on refusal.
 * Returns VD_OK, VD_E_VERSION_REFUSED (no common version: the host is older than the oldest version this
 * driver supports) or VD_E_INVALID_ARGUMENT (a NULL pointer or a host table too small).
 */
typedef int32_t (*vd_negotiate_fn)(uint32_t *in_out_version, const vd_host_table *host,
                                   const vd_driver_table **out_table);

#ifdef __cplusplus
}
#endif

#endif /* VOLUME_DRIVER_VOLUME_DRIVER_H */
