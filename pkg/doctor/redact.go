package doctor

import (
	"bytes"
	"encoding/base64"
	"regexp"
)

// What a support bundle must never carry, and what replaces it. Every
// text that goes into a bundle (files, logs, command output) passes
// through redactSecrets; the doctor report's evidence passes through
// redact.
var (
	// tokenRE matches a bootstrap token anywhere in a line (yurthub
	// prints its whole configuration at start-up, a join token
	// included); the public ID before the dot is kept.
	tokenRE = regexp.MustCompile(`\b([a-z0-9]{6})\.[a-z0-9]{16}\b`)
	// privateKeyRE matches a PEM private key block of any kind.
	privateKeyRE = regexp.MustCompile(`(?s)-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----`)
	// secretFieldRE matches the value of a field that holds a secret in
	// YAML, TOML, INI or env files: kubeconfig's client-key-data and
	// token, containerd's registry auth, passwords.
	secretFieldRE = regexp.MustCompile(`(?im)^(\s*-?\s*["']?(?:client-key-data|token|password|passwd|client-secret|id-token|refresh-token|auth|identitytoken|registrytoken|bearer-token|secret)["']?\s*[:=][ \t]*)[^\s#].*$`)
	// jsonSecretRE matches the same fields in JSON (the join state, a
	// cached object, crictl's output).
	jsonSecretRE = regexp.MustCompile(`("(?:client-key-data|token|password|client-secret|id-token|refresh-token|auth|identitytoken|registrytoken|bearer-token)"\s*:\s*)"[^"]*"`)
	// secretFlagRE matches the value of a flag that takes a credential.
	secretFlagRE = regexp.MustCompile(`(--(?:bootstrap-token|join-token|discovery-token|token|password|client-key-data)[= ])[^\s"',]+`)
	// bearerRE matches an Authorization header's credential.
	bearerRE = regexp.MustCompile(`(?i)(authorization:?\s*"?bearer\s+)[^\s"']+`)
	// jwtRE matches a JSON Web Token (a service account token).
	jwtRE = regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)
	// pemB64RE matches base64 that starts like "-----BEGIN": a PEM file
	// inlined in a kubeconfig or a Secret.
	pemB64RE = regexp.MustCompile(`LS0tLS1CRUdJTi[A-Za-z0-9+/]*={0,2}`)
)

const redacted = "<redacted>"

// redactSecrets replaces every credential in b and says how many it
// replaced. It errs on the side of hiding: a field named token is hidden
// whatever it holds.
func redactSecrets(b []byte) ([]byte, int) {
	n := 0
	count := func(re *regexp.Regexp, repl func([]byte) []byte) {
		b = re.ReplaceAllFunc(b, func(m []byte) []byte {
			out := repl(m)
			if !bytes.Equal(out, m) {
				n++
			}
			return out
		})
	}
	count(privateKeyRE, func(m []byte) []byte {
		typ := privateKeyRE.FindSubmatch(m)[1]
		return []byte("-----BEGIN " + string(typ) + "-----\n" + redacted + "\n-----END " + string(typ) + "-----")
	})
	count(pemB64RE, func(m []byte) []byte {
		dec, err := base64.StdEncoding.DecodeString(string(m))
		if err != nil {
			dec, _ = base64.RawStdEncoding.DecodeString(string(bytes.TrimRight(m, "=")))
		}
		if bytes.Contains(dec, []byte("PRIVATE KEY")) {
			return []byte(redacted)
		}
		return m
	})
	count(secretFieldRE, func(m []byte) []byte {
		sub := secretFieldRE.FindSubmatch(m)
		if bytes.HasSuffix(bytes.TrimSpace(m), []byte(redacted)) {
			return m
		}
		return []byte(string(sub[1]) + redacted)
	})
	count(jsonSecretRE, func(m []byte) []byte {
		sub := jsonSecretRE.FindSubmatch(m)
		if bytes.HasSuffix(m, []byte(`"`+redacted+`"`)) || bytes.HasSuffix(m, []byte(`""`)) {
			return m
		}
		return []byte(string(sub[1]) + `"` + redacted + `"`)
	})
	count(secretFlagRE, func(m []byte) []byte {
		sub := secretFlagRE.FindSubmatch(m)
		if bytes.HasSuffix(m, []byte(redacted)) {
			return m
		}
		return []byte(string(sub[1]) + redacted)
	})
	count(bearerRE, func(m []byte) []byte {
		sub := bearerRE.FindSubmatch(m)
		if bytes.HasSuffix(m, []byte(redacted)) {
			return m
		}
		return []byte(string(sub[1]) + redacted)
	})
	count(jwtRE, func([]byte) []byte { return []byte(redacted) })
	count(tokenRE, func(m []byte) []byte { return []byte(string(tokenRE.FindSubmatch(m)[1]) + "." + redacted) })
	return b, n
}

// redact hides bootstrap tokens' secrets, and every other credential, in s.
func redact(s string) string {
	b, _ := redactSecrets([]byte(s))
	return string(b)
}
