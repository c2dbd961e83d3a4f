package bench

import (
	"context"
	"fmt"
	"time"
)

// ColdRun is one cold start of the real bootstrap: a fresh process, a fresh broker connection, a topic
// lookup, producer creation and the first invocation. Times are from process start.
type ColdRun struct {
	Init     time.Duration // the runtime's first /next (Lambda's Init Duration)
	Response time.Duration // the first invocation answered: its record is confirmed by then
	Invoke   time.Duration // the first invocation's own duration (Lambda's Duration)

	// Filled when the run went through the timing proxy (Proxied).
	Proxied      bool
	Accept       time.Duration // TCP connection to the broker accepted
	Connected    time.Duration // CONNECTED: the protocol handshake done
	Looked       time.Duration // LOOKUP_RESPONSE: the topic's owner known
	ProducerUp   time.Duration // PRODUCER_SUCCESS: the producer created
	FirstSend    time.Duration // first SEND
	FirstReceipt time.Duration // first SEND_RECEIPT: the first confirmed publish
}

// ColdOptions configure the cold start runs.
type ColdOptions struct {
	Function FunctionOptions // its Topic should exist: a cold function, not a cold broker
	Payload  []byte          // the first event
	Runs     int
}

// ColdStarts runs o.Runs cold starts straight to the broker and o.Runs through the timing proxy,
// alternating, and returns both sets.
func ColdStarts(ctx context.Context, o ColdOptions) (direct, proxied []ColdRun, err error) {
	hostPort, err := hostPortOf(o.Function.ServiceURL)
	if err != nil {
		return nil, nil, err
	}
	proxy, err := StartProxy(hostPort)
	if err != nil {
		return nil, nil, err
	}
	defer proxy.Close()
	for i := 0; i < o.Runs; i++ {
		r, err := coldRun(ctx, o, o.Function.ServiceURL, nil)
		if err != nil {
			return direct, proxied, fmt.Errorf("cold start %d: %w", i+1, err)
		}
		direct = append(direct, r)
		proxy.Reset()
		r, err = coldRun(ctx, o, proxy.ServiceURL(), proxy)
		if err != nil {
			return direct, proxied, fmt.Errorf("cold start %d through the proxy: %w", i+1, err)
		}
		proxied = append(proxied, r)
	}
	return direct, proxied, nil
}

func coldRun(ctx context.Context, o ColdOptions, serviceURL string, proxy *Proxy) (ColdRun, error) {
	fo := o.Function
	fo.ServiceURL, fo.Timeout = serviceURL, 30*time.Second
	f, err := StartFunction(ctx, fo)
	if err != nil {
		return ColdRun{}, err
	}
	defer func() { _ = f.Close() }()
	res, err := f.Invoke(ctx, o.Payload)
	answered := time.Since(f.Started)
	if err != nil {
		return ColdRun{}, err
	}
	if !res.ColdStart {
		return ColdRun{}, fmt.Errorf("the first invocation was not reported as a cold start")
	}
	r := ColdRun{Init: res.InitDuration, Response: answered, Invoke: res.Duration}
	if proxy == nil {
		return r, nil
	}
	r.Proxied = true
	first := map[int]time.Duration{}
	for _, e := range proxy.Events() {
		if _, seen := first[e.Type]; !seen {
			first[e.Type] = e.At.Sub(f.Started)
		}
	}
	for _, want := range []int{eventAccept, cmdConnected, cmdLookupResponse, cmdProducerSuccess, cmdSend, cmdSendReceipt} {
		if _, ok := first[want]; !ok {
			return r, fmt.Errorf("the proxy saw no %s", commandName(want))
		}
	}
	r.Accept, r.Connected, r.Looked = first[eventAccept], first[cmdConnected], first[cmdLookupResponse]
	r.ProducerUp, r.FirstSend, r.FirstReceipt = first[cmdProducerSuccess], first[cmdSend], first[cmdSendReceipt]
	return r, nil
}

func commandName(t int) string {
	switch t {
	case eventAccept:
		return "TCP accept"
	case cmdConnect:
		return "CONNECT"
	case cmdConnected:
		return "CONNECTED"
	case cmdProducer:
		return "PRODUCER"
	case cmdSend:
		return "SEND"
	case cmdSendReceipt:
		return "SEND_RECEIPT"
	case cmdProducerSuccess:
		return "PRODUCER_SUCCESS"
	case cmdPartitionedMetadata:
		return "PARTITIONED_METADATA"
	case cmdPartitionedMetadataResponse:
		return "PARTITIONED_METADATA_RESPONSE"
	case cmdLookup:
		return "LOOKUP"
	case cmdLookupResponse:
		return "LOOKUP_RESPONSE"
	}
	return fmt.Sprintf("command %d", t)
}
