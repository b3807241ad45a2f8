// Command web is the multi-node harness's workload: it answers every HTTP
// request on -listen (default :8080) with "<pod name> <start time>\n", so
// a scenario can tell the pod that answers and whether it restarted. The
// pod name comes from $POD_NAME (the downward API) or the hostname. It
// exits 0 on SIGTERM or SIGINT. "web -get URL" is the client the
// scenarios run inside a node: it prints the body and exits 0 on a 200.
// Built with CGO_ENABLED=0 into the image
// yurtadm.e2e/web:v1 (test/cluster).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", ":8080", "address to serve on")
	get := flag.String("get", "", "fetch this URL, print the body, exit 0 on a 200")
	flag.Parse()
	if *get != "" {
		os.Exit(fetch(*get))
	}
	name := os.Getenv("POD_NAME")
	if name == "" {
		name, _ = os.Hostname()
	}
	started := time.Now().UTC().Format(time.RFC3339Nano)
	srv := &http.Server{Addr: *listen, ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "%s %s\n", name, started)
		})}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "web:", err)
		os.Exit(1)
	}
}

func fetch(url string) int {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "web:", err)
		return 1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Print(string(b))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "web:", resp.Status)
		return 1
	}
	return 0
}
