/* Stands in for a QEMU built without iSCSI and without modules. */
int main(void) { return 0; }
