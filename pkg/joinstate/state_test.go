package joinstate

import (
	"slices"
	"strings"
	"testing"

	"github.com/yurtadm/yurtadm/pkg/constants"
	"github.com/yurtadm/yurtadm/pkg/host/hosttest"
)

func TestReadJoinState(t *testing.T) {
	tests := []struct {
		name    string
		content string // "" plants no file
		want    *State
		wantErr string
	}{
		{name: "no state file", want: nil},
		{
			name:    "what join writes",
			content: `{"version":1,"files":["/etc/kubernetes/manifests/yurthub.yaml"],"createdDirs":["/var/lib/openyurt"],"dropIn":true}`,
			want:    &State{Version: 1, Files: []string{"/etc/kubernetes/manifests/yurthub.yaml"}, CreatedDirs: []string{"/var/lib/openyurt"}, DropIn: true},
		},
		{
			name:    "fields reset does not know are ignored; paths are cleaned",
			content: `{"version":1,"files":["/etc//kubernetes/kubelet.conf"],"dropIn":false,"writtenBy":"v1.2.3"}`,
			want:    &State{Version: 1, Files: []string{"/etc/kubernetes/kubelet.conf"}},
		},
		{name: "newer version", content: `{"version":2,"files":[]}`, wantErr: "version 2"},
		{name: "not JSON", content: `{"version":1,`, wantErr: "parse"},
		{name: "relative path", content: `{"version":1,"files":["etc/passwd"]}`, wantErr: "not an absolute path"},
		{name: "the root itself", content: `{"version":1,"createdDirs":["/"]}`, wantErr: "not an absolute path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _ := hosttest.New(t)
			if tc.content != "" {
				hosttest.WriteFile(t, h, constants.JoinStateFile, tc.content)
			}
			got, err := Read(h.FS)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tc.want == nil) {
				t.Fatalf("state = %+v, want %+v", got, tc.want)
			}
			if got != nil && (got.Version != tc.want.Version || got.DropIn != tc.want.DropIn ||
				!slices.Equal(got.Files, tc.want.Files) || !slices.Equal(got.CreatedDirs, tc.want.CreatedDirs)) {
				t.Errorf("state = %+v, want %+v", got, tc.want)
			}
		})
	}
}
