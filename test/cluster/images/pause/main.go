// Command pause is the multi-node harness's own pause image and test
// workload: it sleeps until SIGTERM or SIGINT and exits 0. As PID 1 of a
// container (a pod sandbox shares its PID namespace with the pod's
// containers when the pod asks for it) it also reaps the zombies that are
// reparented to it. The harness wraps it into registry.k8s.io/pause:3.10
// (containerd's sandbox image) and into the sleeper workload image with
// test/tools/cmd/mkimage; it must be built with CGO_ENABLED=0.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		fmt.Println("pause (yurtadm e2e) 1.0")
		return
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		switch s {
		case syscall.SIGCHLD:
			reap()
		default:
			fmt.Fprintf(os.Stderr, "pause: %v, exiting\n", s)
			os.Exit(0)
		}
	}
}

// reap collects every exited child. A process that is not PID 1 has no
// children here, and Wait4 returns ECHILD at once.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
