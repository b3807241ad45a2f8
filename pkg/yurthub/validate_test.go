package yurthub

import "testing"

func TestValidateImage(t *testing.T) {
	for _, ok := range []string{"docker.io/openyurt/yurthub:v1.7.0", "openyurt/yurthub", "yurthub:v1", "localhost:5000/a/b_c:1.0",
		"registry.example.com/x/y@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "a.b-c.io/x--y/z:latest"} {
		if err := ValidateImage(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", " ", "docker.io/openyurt/yurthub:v1.7.0\r", "a b", "x:y\n  command: [sh]", "UPPER/case",
		"x:", "x@sha256:12", "-x", "x/../y", `x"y`, "x#y", "x:y:z", "x/", "/x", "x:" + string(make([]byte, 130))} {
		if err := ValidateImage(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestValidateExtraArgs(t *testing.T) {
	if err := ValidateExtraArgs([]string{"--enable-dummy-if=false", "--v=4", "--disabled-resource-filters=a,b", "--x=a b: #c"}); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"enable-dummy-if=false", "--", "--=x", "--A=b", "--a\n=b", "--a=b\r", "--a=b\n- --evil", "--a=\t", "--a b=c", "-v=4"} {
		if err := ValidateExtraArgs([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
