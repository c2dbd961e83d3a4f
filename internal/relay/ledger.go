package relay

import (
	"errors"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// The ledger keeps the package's invariant: the response names the first record, in batch order,
// that is not done, and nothing after it counts as done. A record is done when every message made from
// it is confirmed on its topic or written to the dead-letter topic. Every answer is entered through
// answer, and every question of what is done is answered by firstUndone; nothing else writes the
// outcomes.

// state of one message. The zero value means not sent (or sent and not yet answered).
type state uint8

const (
	unanswered   state = iota
	confirmed          // the broker's receipt arrived
	failed             // will be retried by Lambda
	toDeadLetter       // can never reach its topic; waiting for the dead-letter phase
	deadLettered       // written to the dead-letter topic
)

type outcome struct {
	state   state
	id      pulsar.MessageID
	err     error
	latency time.Duration
}

// ledger holds one outcome per message. It is not safe for concurrent use: the batch's lock guards it.
type ledger struct {
	starts      []int // record i owns messages starts[i]:starts[i+1]
	out         []outcome
	answered    int  // answers entered, over both phases
	deadLetters bool // a dead-letter topic is set: a permanent failure waits for it instead of failing
}

func newLedger(starts []int, deadLetters bool) ledger {
	return ledger{starts: starts, out: make([]outcome, starts[len(starts)-1]), deadLetters: deadLetters}
}

// answer enters the answer for message i: its receipt (err nil) or why it failed, from publishing or
// from the dead-letter phase. counted is false for a second answer to the same send; retry is the
// failure when Lambda must retry the record.
func (l *ledger) answer(i int, id pulsar.MessageID, err error, latency time.Duration) (counted bool, retry error) {
	o := &l.out[i]
	switch {
	case o.state == toDeadLetter && err == nil:
		o.state, o.id = deadLettered, id
	case o.state == toDeadLetter:
		o.state, o.err, retry = failed, err, err
	case o.state != unanswered:
		return false, nil
	case err == nil:
		o.state, o.id, o.latency = confirmed, id, latency
	case l.deadLetters && permanent(err):
		o.state, o.err = toDeadLetter, err
	default:
		o.state, o.err, retry = failed, err, err
	}
	l.answered++
	return true, retry
}

// firstUndone returns the first record with a message neither confirmed nor dead-lettered, or -1 when
// every record is done. With pendingDeadLetterDone, messages waiting for the dead-letter phase count
// as done: that phase writes only what lies before the first record failed otherwise.
func (l *ledger) firstUndone(pendingDeadLetterDone bool) int {
	for rec := 0; rec+1 < len(l.starts); rec++ {
		for i := l.starts[rec]; i < l.starts[rec+1]; i++ {
			switch l.out[i].state {
			case confirmed, deadLettered:
			case toDeadLetter:
				if !pendingDeadLetterDone {
					return rec
				}
			default:
				return rec
			}
		}
	}
	return -1
}

// forDeadLetter returns the messages the dead-letter phase writes: those waiting for it, before the
// first record failed otherwise (Lambda retries from there anyway: writing later ones now would write
// them twice).
func (l *ledger) forDeadLetter() []int {
	end := len(l.out)
	if rec := l.firstUndone(true); rec >= 0 {
		end = l.starts[rec]
	}
	var todo []int
	for i := range end {
		if l.out[i].state == toDeadLetter {
			todo = append(todo, i)
		}
	}
	return todo
}

// permanent reports errors after which the record can never reach its topic.
func permanent(err error) bool {
	if errors.Is(err, errUnroutable) {
		return true
	}
	var perr *pulsar.Error
	if errors.As(err, &perr) {
		switch perr.Result() {
		case pulsar.MessageTooBig, pulsar.TopicTerminated, pulsar.InvalidTopicName, pulsar.InvalidMessage:
			return true
		}
	}
	// Creating a producer on a terminated topic fails with the broker's error as text only
	// ("server error: TopicTerminatedError: ..."), not as a *pulsar.Error.
	return err != nil && strings.Contains(err.Error(), "TopicTerminatedError")
}
