package cmdutil

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadConfigFile: any content is either refused with a usage error or
// read as exactly one non-empty document, never a panic.
func FuzzReadConfigFile(f *testing.F) {
	f.Add([]byte("apiVersion: yurtadm.openyurt.io/v1alpha1\nkind: JoinConfiguration\n"))
	f.Add([]byte("a: 1\n---\nb: 2\n"))
	f.Add([]byte("---\n---\n# c\n"))
	f.Add([]byte("\xff\xfe\x00"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		doc, err := ReadConfigFile(p)
		if err != nil {
			if ExitCode(err) != ExitUsage {
				t.Fatalf("exit %d for %v", ExitCode(err), err)
			}
			return
		}
		if len(doc) == 0 {
			t.Fatal("an empty document was accepted")
		}
	})
}
