package cluster

import (
	"strings"
	"testing"
)

func TestSplitYAML(t *testing.T) {
	in := "# Source: a\napiVersion: v1\nkind: A\nmetadata:\n  name: a\n\napiVersion: v1\nkind: B\n---\n# only a comment\n---\napiVersion: v1\nkind: C\n"
	docs := splitYAML([]byte(in))
	var kinds []string
	for _, d := range docs {
		for _, l := range strings.Split(string(d), "\n") {
			if strings.HasPrefix(l, "kind: ") {
				kinds = append(kinds, strings.TrimPrefix(l, "kind: "))
			}
		}
	}
	if strings.Join(kinds, ",") != "A,B,C" || len(docs) != 3 {
		t.Errorf("%d documents, kinds %v", len(docs), kinds)
	}
}
