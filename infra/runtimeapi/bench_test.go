//go:build unix

package runtimeapi

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkEnvInvoke measures warm invocations of the real test bootstrap through Env:
//
//	go test -run '^$' -bench BenchmarkEnvInvoke -benchtime 2000x ./infra/runtimeapi
func BenchmarkEnvInvoke(b *testing.B) {
	for _, size := range []int{128, 1 << 20} {
		for _, freeze := range []bool{false, true} {
			b.Run(fmt.Sprintf("event=%dB/freeze=%v", size, freeze), func(b *testing.B) {
				env, err := Start(context.Background(), Options{Binary: testBootstrap, FreezeBetweenInvokes: freeze})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _, _ = env.Shutdown(context.Background()) })
				benchInvoke(b, env, benchPayload(size))
			})
		}
	}
}

// BenchmarkServerRoundTrip isolates the server: one invocation handed to /next and answered on
// /response by an in-process client shaped like aws-lambda-go's (a cloned default transport, a
// chunked POST), with no child process. It is the floor that HTTP over loopback sets per invocation.
func BenchmarkServerRoundTrip(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	o, err := Options{Binary: testBootstrap}.withDefaults()
	if err != nil {
		b.Fatal(err)
	}
	inst := &instance{
		opts: &o, addr: ln.Addr().String(), events: make(chan *invocation),
		ready: make(chan struct{}), initErr: make(chan struct{}), stopping: make(chan struct{}),
		exited: make(chan struct{}), exts: make(map[string]*extension),
	}
	inst.srv = &http.Server{Handler: inst}
	go func() { _ = inst.srv.Serve(ln) }()
	b.Cleanup(func() { _ = inst.srv.Close() })

	go func() {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		c := &http.Client{Transport: tr}
		base := "http://" + inst.addr
		for {
			resp, err := c.Get(base + nextPath)
			if err != nil {
				return // the server closed
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			// A reader of unknown length makes the POST chunked, as aws-lambda-go's is.
			post, err := c.Post(base+invocationPath+resp.Header.Get(hdrRequestID)+"/response",
				"application/json", io.MultiReader(strings.NewReader(string(body))))
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, post.Body)
			_ = post.Body.Close()
		}
	}()

	payload := []byte(`{"action":"echo"}`)
	for b.Loop() {
		inv := &invocation{id: newRequestID(), payload: payload, done: make(chan struct{}), traceID: newTraceID(time.Now())}
		inst.events <- inv
		<-inv.done
	}
}
