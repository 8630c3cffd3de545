/* A block-iscsi.so for the fake modular build's stamp: what QEMU's loader looks up in a module. */
void qemu_module_dummy(void) {}
void qemu_stamp_0123456789abcdef0123456789abcdef01234567(void) {}
