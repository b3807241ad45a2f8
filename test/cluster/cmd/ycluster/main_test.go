package main

import (
	"slices"
	"testing"

	"github.com/yurtadm/yurtadm/test/cluster"
)

func TestTakeNameSelectsTheCluster(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		name     string
		rest     []string
		wantsErr bool
	}{
		{[]string{"down"}, cluster.DefaultName, []string{"down"}, false},
		{[]string{"down", "--name", "kadm"}, "kadm", []string{"down"}, false},
		{[]string{"exec", "--name=kadm", "kcp", "hostname"}, "kadm", []string{"exec", "kcp", "hostname"}, false},
		// A --name after the node belongs to the node's command.
		{[]string{"exec", "cp", "x", "--name", "y"}, cluster.DefaultName, []string{"exec", "cp", "x", "--name", "y"}, false},
		{[]string{"down", "--name"}, "", nil, true},
	} {
		name, rest, err := takeName(tc.args)
		if (err != nil) != tc.wantsErr || name != tc.name || !slices.Equal(rest, tc.rest) {
			t.Errorf("takeName(%q) = %q, %q, %v; want %q, %q, error %v", tc.args, name, rest, err, tc.name, tc.rest, tc.wantsErr)
		}
	}
}
