package token

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeProc writes a proc tree where pid listens on 127.0.0.1:10267 (socket
// inode 4242) with command name comm, running /usr/local/bin/<comm>.
func fakeProc(t *testing.T, pid, comm string, state string) string {
	return fakeProcExe(t, pid, comm, "/usr/local/bin/"+comm, state)
}

func fakeProcExe(t *testing.T, pid, comm, exe string, state string) string {
	t.Helper()
	p := t.TempDir()
	tcp := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:281B 00000000:0000 " + state + " 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n" +
		"   1: 0100007F:2815 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0\n"
	for f, data := range map[string]string{"net/tcp": tcp, pid + "/comm": comm + "\n", "77/comm": "other\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(p, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, f), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(exe, filepath.Join(p, pid, "exe")); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct{ pid, fd, target string }{{pid, "3", "socket:[4242]"}, {"77", "5", "socket:[99]"}, {pid, "0", "/dev/null"}} {
		if err := os.MkdirAll(filepath.Join(p, l.pid, "fd"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(l.target, filepath.Join(p, l.pid, "fd", l.fd)); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestListenerOf(t *testing.T) {
	pid, comm, err := listenerOf(fakeProc(t, "1234", "yurthub", "0A"), 10267)
	if err != nil || pid != 1234 || comm != "yurthub" {
		t.Errorf("got %d %q %v, want 1234 yurthub", pid, comm, err)
	}
	if _, comm, err := listenerOf(fakeProc(t, "1234", "nc", "0A"), 10267); err != nil || comm != "nc" {
		t.Errorf("got %q %v, want nc", comm, err)
	}
	// A process that calls itself yurthub (prctl PR_SET_NAME) but runs
	// another executable is named with it.
	if _, name, err := listenerOf(fakeProcExe(t, "1234", "yurthub", "/tmp/nc", "0A"), 10267); err != nil || name != "yurthub, running /tmp/nc" {
		t.Errorf("got %q %v, want the executable named", name, err)
	}
	// An established connection on the port is not a listener.
	if _, _, err := listenerOf(fakeProc(t, "1234", "yurthub", "01"), 10267); err == nil || !strings.Contains(err.Error(), "nothing listens on port 10267") {
		t.Errorf("no listener: %v", err)
	}
}
