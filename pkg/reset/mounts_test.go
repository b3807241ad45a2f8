package reset

import (
	"slices"
	"testing"
)

func TestParseMountPoints(t *testing.T) {
	tests := []struct {
		name  string
		table string
		want  []string
	}{
		{"plain", "proc /proc proc rw 0 0\n/dev/sda1 / ext4 rw 0 0\n", []string{"/proc", "/"}},
		{"escaped space and tab", `tmpfs /a\040b\011c tmpfs rw 0 0`, []string{"/a b\tc"}},
		{"escaped backslash", `tmpfs /a\134b tmpfs rw 0 0`, []string{`/a\b`}},
		{"not an escape", `tmpfs /a\9 tmpfs rw 0 0`, []string{`/a\9`}},
		{"short and blank lines", "\nnone\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseMountPoints(tc.table); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
