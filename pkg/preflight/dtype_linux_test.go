package preflight

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// The real probe on the test machine's temp dir (ext4 or overlay: both
// store file types).
func TestProbeDTypeReal(t *testing.T) {
	tests := []struct {
		name  string
		files []string
	}{
		{name: "empty dir: judged by its parent's entry, nothing written"},
		{name: "dir with a file", files: []string{"meta.db"}},
		{name: "dir with a subdir", files: []string{"io.containerd.snapshotter.v1.overlayfs/"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				p := filepath.Join(dir, f)
				var err error
				if f[len(f)-1] == '/' {
					err = os.Mkdir(p, 0o755)
				} else {
					err = os.WriteFile(p, nil, 0o644)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			before := fi.ModTime()
			ok, err := ProbeDType(dir)
			if err != nil || !ok {
				t.Fatalf("ProbeDType(%s) = %v, %v; want true, nil", dir, ok, err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(tc.files) {
				t.Errorf("the probe changed the directory: %v", entries)
			}
			if fi, _ := os.Stat(dir); fi.ModTime().After(before) {
				t.Errorf("the probe wrote into %s", dir)
			}
		})
	}
	t.Run("missing dir", func(t *testing.T) {
		if _, err := ProbeDType(filepath.Join(t.TempDir(), "nope")); err == nil {
			t.Error("ProbeDType on a missing dir did not fail")
		}
	})
}

// dirents builds getdents64 records.
func dirents(entries ...struct {
	name string
	typ  uint8
}) []byte {
	var buf []byte
	for _, e := range entries {
		reclen := (direntNameOff + len(e.name) + 1 + 7) &^ 7
		rec := make([]byte, reclen)
		binary.NativeEndian.PutUint64(rec[0:], 42)
		binary.NativeEndian.PutUint16(rec[direntReclenOff:], uint16(reclen))
		rec[direntTypeOff] = e.typ
		copy(rec[direntNameOff:], e.name)
		buf = append(buf, rec...)
	}
	return buf
}

type ent = struct {
	name string
	typ  uint8
}

func TestFirstEntryType(t *testing.T) {
	tests := []struct {
		name      string
		buf       []byte
		wantType  uint8
		wantFound bool
	}{
		{name: "xfs ftype=0: dots made up, file unknown",
			buf:      dirents(ent{".", syscall.DT_DIR}, ent{"..", syscall.DT_DIR}, ent{"meta.db", syscall.DT_UNKNOWN}),
			wantType: syscall.DT_UNKNOWN, wantFound: true},
		{name: "d_type stored",
			buf:      dirents(ent{".", syscall.DT_DIR}, ent{"..", syscall.DT_DIR}, ent{"meta.db", syscall.DT_REG}),
			wantType: syscall.DT_REG, wantFound: true},
		{name: "only dots", buf: dirents(ent{".", syscall.DT_DIR}, ent{"..", syscall.DT_DIR})},
		{name: "empty"},
		{name: "truncated record", buf: dirents(ent{"meta.db", syscall.DT_REG})[:20]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ, found := firstEntryType(tc.buf)
			if typ != tc.wantType || found != tc.wantFound {
				t.Errorf("got %d, %v; want %d, %v", typ, found, tc.wantType, tc.wantFound)
			}
		})
	}
}

func TestListenPortReal(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := net.SplitHostPort(l.Addr().String())
	port, _ := strconv.Atoi(p)
	if err := listenPort(port); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("port %d taken on 127.0.0.1: listenPort = %v, want EADDRINUSE", port, err)
	}
	l.Close()
	if err := listenPort(port); err != nil {
		t.Errorf("port %d free: listenPort = %v", port, err)
	}
}

func TestDialUnixReal(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "cri.sock")
	if err := dialUnix(sock); err == nil {
		t.Error("dialling a missing socket succeeded")
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := dialUnix(sock); err != nil {
		t.Errorf("dialUnix: %v", err)
	}
}
