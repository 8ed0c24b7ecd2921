package gateway_test

import "syscall"

// childAttr kills the emulator with the test binary, even if the tests crash.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
