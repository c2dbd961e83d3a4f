package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Commands of the Pulsar binary protocol (BaseCommand.Type in PulsarApi.proto) that the cold start
// timeline names.
const (
	cmdConnect                     = 2
	cmdConnected                   = 3
	cmdProducer                    = 5
	cmdSend                        = 6
	cmdSendReceipt                 = 7
	cmdProducerSuccess             = 17
	cmdPartitionedMetadata         = 21
	cmdPartitionedMetadataResponse = 22
	cmdLookup                      = 23
	cmdLookupResponse              = 24

	eventAccept = -1 // not a command: the proxy accepted a TCP connection
)

// Fields of BaseCommand and CommandLookupTopicResponse that the proxy reads or rewrites.
const (
	fieldType           = 1  // BaseCommand.type
	fieldLookupResponse = 24 // BaseCommand.lookupTopicResponse
	fieldBrokerURL      = 1  // CommandLookupTopicResponse.brokerServiceUrl
)

// ProtoEvent is one frame (or connection) seen by the proxy.
type ProtoEvent struct {
	At         time.Time
	Conn       int
	FromBroker bool
	Type       int // BaseCommand type, or eventAccept
}

// Proxy is a TCP proxy in front of a Pulsar broker that timestamps every command of the binary
// protocol, so a cold start can be split into connect, lookup and producer creation from outside the
// function, without instrumenting it. It rewrites the broker URL in lookup answers to its own, so that
// the client's second hop (to the broker that owns the topic) also goes through it; everything else is
// forwarded unchanged. It listens on 127.0.0.1 only.
type Proxy struct {
	ln         net.Listener
	target     string
	serviceURL string

	mu     sync.Mutex
	events []ProtoEvent
	conns  []net.Conn
	nconn  int
	closed bool
	wg     sync.WaitGroup
}

// StartProxy listens on a free loopback port and forwards to target (host:port of the broker).
func StartProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy: listen: %w", err)
	}
	p := &Proxy{ln: ln, target: target, serviceURL: "pulsar://" + ln.Addr().String()}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// ServiceURL is the pulsar:// URL of the proxy.
func (p *Proxy) ServiceURL() string { return p.serviceURL }

// Events returns the frames seen since the last Reset, in order.
func (p *Proxy) Events() []ProtoEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ProtoEvent(nil), p.events...)
}

// Reset forgets the events seen so far.
func (p *Proxy) Reset() {
	p.mu.Lock()
	p.events = nil
	p.mu.Unlock()
}

// Close stops listening and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.mu.Unlock()
	_ = p.ln.Close()
	for _, c := range conns {
		_ = c.Close()
	}
	p.wg.Wait()
}

func (p *Proxy) note(conn int, fromBroker bool, typ int) {
	p.mu.Lock()
	p.events = append(p.events, ProtoEvent{At: time.Now(), Conn: conn, FromBroker: fromBroker, Type: typ})
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.nconn++
		id := p.nconn
		p.mu.Unlock()
		p.note(id, false, eventAccept)
		broker, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = client.Close()
			_ = broker.Close()
			return
		}
		p.conns = append(p.conns, client, broker)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(id, client, broker, false)
		go p.pipe(id, broker, client, true)
	}
}

// pipe copies frames from src to dst, noting each command.
func (p *Proxy) pipe(id int, src, dst net.Conn, fromBroker bool) {
	defer p.wg.Done()
	defer func() { _ = src.Close(); _ = dst.Close() }()
	for {
		frame, err := readFrame(src)
		if err != nil {
			return
		}
		typ, cmd, rest, err := splitFrame(frame)
		if err != nil {
			return
		}
		p.note(id, fromBroker, typ)
		if fromBroker && typ == cmdLookupResponse {
			if cmd, err = rewriteLookup(cmd, p.serviceURL); err != nil {
				return
			}
			frame = joinFrame(cmd, rest)
		} else {
			frame = append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)
		}
		if _, err := dst.Write(frame); err != nil {
			return
		}
	}
}

// maxFrame bounds a frame the proxy accepts (the broker's own limit is about 5 MiB).
const maxFrame = 64 << 20

// readFrame reads one frame and returns it without its leading total-size field.
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > maxFrame {
		return nil, fmt.Errorf("proxy: frame of %d bytes", n)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(r, frame); err != nil {
		return nil, err
	}
	return frame, nil
}

// splitFrame returns the command type, the command and whatever follows it (a message's metadata and
// payload). frame starts at the command-size field.
func splitFrame(frame []byte) (typ int, cmd, rest []byte, err error) {
	if len(frame) < 4 {
		return 0, nil, nil, errors.New("proxy: short frame")
	}
	n := binary.BigEndian.Uint32(frame)
	if int(n) > len(frame)-4 {
		return 0, nil, nil, fmt.Errorf("proxy: command of %d bytes in a frame of %d", n, len(frame))
	}
	cmd, rest = frame[4:4+n], frame[4+n:]
	for b := cmd; len(b) > 0; {
		num, wt, l := protowire.ConsumeTag(b)
		if l < 0 {
			return 0, nil, nil, protowire.ParseError(l)
		}
		b = b[l:]
		if num == fieldType && wt == protowire.VarintType {
			v, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return 0, nil, nil, protowire.ParseError(l)
			}
			return int(v), cmd, rest, nil
		}
		l = protowire.ConsumeFieldValue(num, wt, b)
		if l < 0 {
			return 0, nil, nil, protowire.ParseError(l)
		}
		b = b[l:]
	}
	return 0, nil, nil, errors.New("proxy: command without a type")
}

// joinFrame builds a whole frame (with its total-size field) from a command and what follows it.
func joinFrame(cmd, rest []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(4+len(cmd)+len(rest)))
	out = binary.BigEndian.AppendUint32(out, uint32(len(cmd)))
	out = append(out, cmd...)
	return append(out, rest...)
}

// rewriteLookup replaces brokerServiceUrl in a lookup answer with url and keeps every other field.
func rewriteLookup(cmd []byte, url string) ([]byte, error) {
	return rewriteField(cmd, fieldLookupResponse, func(inner []byte) ([]byte, error) {
		return rewriteField(inner, fieldBrokerURL, func([]byte) ([]byte, error) { return []byte(url), nil })
	})
}

// rewriteField re-encodes msg with the bytes field num passed through fn.
func rewriteField(msg []byte, num protowire.Number, fn func([]byte) ([]byte, error)) ([]byte, error) {
	var out []byte
	for b := msg; len(b) > 0; {
		n, wt, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil, protowire.ParseError(l)
		}
		field := b
		b = b[l:]
		vl := protowire.ConsumeFieldValue(n, wt, b)
		if vl < 0 {
			return nil, protowire.ParseError(vl)
		}
		if n == num && wt == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b)
			nv, err := fn(v)
			if err != nil {
				return nil, err
			}
			out = protowire.AppendTag(out, n, wt)
			out = protowire.AppendBytes(out, nv)
		} else {
			out = append(out, field[:l+vl]...)
		}
		b = b[vl:]
	}
	return out, nil
}
