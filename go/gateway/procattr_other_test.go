//go:build !linux

package gateway_test

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }
