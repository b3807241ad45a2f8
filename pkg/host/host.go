package host

import (
	utilsexec "k8s.io/utils/exec"
)

// Host bundles the seams a node-side command needs.
type Host struct {
	FS   FS
	Exec utilsexec.Interface
	Init InitSystem
}

// New returns the seams for the real machine, with files below root.
func New(root string) *Host {
	e := utilsexec.New()
	return &Host{FS: FS{Root: root}, Exec: e, Init: Systemd{Exec: e}}
}
