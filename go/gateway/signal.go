package gateway

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// UnregisterOnSignal unregisters r when one of signals arrives (default
// SIGTERM and SIGINT), so an orchestrator's stop removes this instance from
// Kong even though deferred calls in main do not run on a signal.
//
// With then nil, the signal's default action follows: the error, if any, is
// printed to stderr and the process terminates by that signal, as it would
// have without this helper. Otherwise then(sig, err) is called and the
// process keeps running (to shut down gracefully itself).
//
// The returned stop function removes the handler; call it once unregistered
// by other means.
func UnregisterOnSignal(r Registration, then func(os.Signal, error), signals ...os.Signal) (stop func()) {
	if len(signals) == 0 {
		signals = []os.Signal{syscall.SIGTERM, os.Interrupt}
	}
	received := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(received, signals...)
	go func() {
		select {
		case sig := <-received:
			// Still subscribed while unregistering: a repeated signal waits
			// in the channel instead of killing the process halfway.
			err := r.Unregister()
			signal.Stop(received)
			if then != nil {
				then(sig, err)
				return
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "gateway: %v\n", err)
			}
			redeliver(sig)
		case <-done:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(received)
			close(done)
		})
	}
}

// redeliver sends sig to this process again with its default action.
func redeliver(sig os.Signal) {
	signal.Reset(sig)
	if self, err := os.FindProcess(os.Getpid()); err == nil && self.Signal(sig) == nil {
		time.Sleep(5 * time.Second) // the default action ends the process meanwhile
	}
	os.Exit(1)
}
