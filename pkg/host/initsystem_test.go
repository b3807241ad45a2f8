package host_test

import (
	"reflect"
	"testing"

	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
)

func TestSystemdRestartReloadsUnitFilesUnlessTold(t *testing.T) {
	sc := &hosttest.Script{T: t, Answers: map[string]hosttest.Answer{"systemctl daemon-reload": {}, "systemctl restart kubelet": {}}}
	s := host.Systemd{Exec: sc}
	if err := s.ServiceRestart("kubelet"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"systemctl daemon-reload", "systemctl restart kubelet"}; !reflect.DeepEqual(sc.Ran, want) {
		t.Errorf("ServiceRestart ran %q, want %q", sc.Ran, want)
	}
	sc.Ran = nil
	if err := s.ServiceRestartNoReload("kubelet"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"systemctl restart kubelet"}; !reflect.DeepEqual(sc.Ran, want) {
		t.Errorf("ServiceRestartNoReload ran %q, want %q", sc.Ran, want)
	}
}
