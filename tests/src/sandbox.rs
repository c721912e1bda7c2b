//! Runs /init as PID 1 of fresh namespaces chrooted into a busybox rootfs (next commit).
