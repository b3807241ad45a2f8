package yurthub

import (
	"strings"
	"testing"
)

func TestSetArgs(t *testing.T) {
	cmd := []string{"yurthub", "--v=2", "--server-addr=https://a:6443", "--v=3", "--x"}
	got := SetArgs(cmd, "--v=4", "--server-addr=https://b:6443", "--new=1")
	if want := "yurthub --v=4 --server-addr=https://b:6443 --x --new=1"; strings.Join(got, " ") != want {
		t.Errorf("got %q, want %q", strings.Join(got, " "), want)
	}
	if strings.Join(cmd, " ") != "yurthub --v=2 --server-addr=https://a:6443 --v=3 --x" {
		t.Errorf("SetArgs changed its input: %q", cmd)
	}
	if got := SetArgs([]string{"--v=1"}, "--v=2"); strings.Join(got, " ") != "--v=1 --v=2" {
		t.Errorf("cmd[0] must never be replaced: %q", got)
	}
	if v, ok := ArgValue(got, "--v"); !ok || v != "4" {
		t.Errorf("ArgValue = %q %v", v, ok)
	}
}
