//go:build unix

package runtimeapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	runtimePrefix   = "/2018-06-01/runtime/"
	invocationPath  = runtimePrefix + "invocation/"
	nextPath        = invocationPath + "next"
	initErrorPath   = runtimePrefix + "init/error"
	extensionPrefix = "/2020-01-01/extension/"
	registerPath    = extensionPrefix + "register"
	eventNextPath   = extensionPrefix + "event/next"

	// Headers are set through the map with canonical keys: no canonicalisation on the hot path.
	hdrRequestID     = "Lambda-Runtime-Aws-Request-Id"
	hdrDeadline      = "Lambda-Runtime-Deadline-Ms"
	hdrFunctionARN   = "Lambda-Runtime-Invoked-Function-Arn"
	hdrTraceID       = "Lambda-Runtime-Trace-Id"
	hdrContentType   = "Content-Type"
	hdrErrorType     = "Lambda-Runtime-Function-Error-Type"
	hdrErrorBody     = "Lambda-Runtime-Function-Error-Body"
	hdrExtensionName = "Lambda-Extension-Name"
	hdrExtensionID   = "Lambda-Extension-Identifier"
	hdrEventID       = "Lambda-Extension-Event-Identifier"
)

var (
	jsonContentType = []string{"application/json"}
	acceptedBody    = []byte(`{"status":"OK"}`)
)

func (inst *instance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == nextPath:
		if method(w, r, http.MethodGet) {
			inst.handleNext(w, r)
		}
	case strings.HasPrefix(p, invocationPath):
		id, kind, _ := strings.Cut(p[len(invocationPath):], "/")
		if id == "" || (kind != "response" && kind != "error") {
			notFound(w, r)
			return
		}
		if method(w, r, http.MethodPost) {
			inst.handleResult(w, r, id, kind == "error")
		}
	case p == initErrorPath:
		if method(w, r, http.MethodPost) {
			inst.handleInitError(w, r)
		}
	case p == registerPath:
		if method(w, r, http.MethodPost) {
			inst.handleRegister(w, r)
		}
	case p == eventNextPath:
		if method(w, r, http.MethodGet) {
			inst.handleEventNext(w, r)
		}
	default:
		notFound(w, r)
	}
}

func method(w http.ResponseWriter, r *http.Request, want string) bool {
	if r.Method == want {
		return true
	}
	w.Header().Set("Allow", want)
	apiError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" "+r.URL.Path+": only "+want+" is allowed")
	return false
}

func notFound(w http.ResponseWriter, r *http.Request) {
	apiError(w, http.StatusNotFound, "NotFound", fmt.Sprintf(
		"runtimeapi: no such endpoint %s %s (emulated: GET %s, POST %s{id}/response, POST %s{id}/error, POST %s, POST %s, GET %s)",
		r.Method, r.URL.Path, nextPath, invocationPath, invocationPath, initErrorPath, registerPath, eventNextPath))
}

// apiError answers with the error document the Runtime API uses.
func apiError(w http.ResponseWriter, status int, typ, msg string) {
	b, _ := json.Marshal(FunctionError{Type: typ, Message: msg})
	w.Header()[hdrContentType] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func accepted(w http.ResponseWriter) {
	w.Header()[hdrContentType] = jsonContentType
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(acceptedBody)
}

// handleNext parks the runtime until Invoke hands over an event. The first call ends the runtime's
// part of init; every call means the previous invocation is complete.
func (inst *instance) handleNext(w http.ResponseWriter, r *http.Request) {
	inst.mu.Lock()
	if !inst.runtimeReady {
		inst.runtimeReady = true
		inst.checkReadyLocked()
	}
	inst.idle = true
	inst.maybeFreezeLocked()
	inst.mu.Unlock()

	var inv *invocation
	select {
	case inv = <-inst.events:
	case <-r.Context().Done():
		return
	case <-inst.exited:
		return
	}

	now := time.Now()
	deadline := now.Add(inst.opts.Timeout)
	inst.mu.Lock()
	inst.idle = false
	inst.current = inv
	inst.deadline = deadline
	inv.delivered = now
	inv.cold = inst.served == 0
	inv.initDur = inst.initDur
	inst.served++
	inst.mu.Unlock()

	h := w.Header()
	h[hdrRequestID] = []string{inv.id}
	h[hdrDeadline] = []string{strconv.FormatInt(deadline.UnixMilli(), 10)}
	h[hdrFunctionARN] = []string{inst.opts.functionARN()}
	h[hdrTraceID] = []string{inv.traceID}
	h[hdrContentType] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(inv.payload))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload)
}

// handleResult takes the runtime's answer to the invocation it holds.
func (inst *instance) handleResult(w http.ResponseWriter, r *http.Request, id string, isError bool) {
	body, tooLarge, err := readLimited(r.Body, MaxPayloadBytes)
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequest", "read body: "+err.Error())
		return
	}
	var fe *FunctionError
	switch {
	case isError:
		fe = parseFunctionError(body, r.Header.Get(hdrErrorType))
	case tooLarge:
		fe = &FunctionError{Type: "Function.ResponseSizeTooLarge", Message: fmt.Sprintf(
			"Response payload size exceeded maximum allowed payload size (%d bytes).", MaxPayloadBytes)}
	case r.Trailer.Get(hdrErrorType) != "":
		// aws-lambda-go reports a failure while streaming the body in trailers.
		fe = trailerError(r.Trailer)
	}

	inst.mu.Lock()
	inv := inst.current
	if inv == nil || inv.id != id {
		inst.mu.Unlock()
		apiError(w, http.StatusBadRequest, "InvalidRequestID", "no invocation "+id+" is in progress")
		return
	}
	inst.current = nil
	inv.finished = time.Now()
	if fe != nil {
		inv.fnErr = fe
	} else {
		inv.response = body
	}
	inst.mu.Unlock()
	close(inv.done)

	if tooLarge && !isError {
		apiError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fe.Message)
		return
	}
	accepted(w)
}

func trailerError(t http.Header) *FunctionError {
	if b, err := base64.StdEncoding.DecodeString(t.Get(hdrErrorBody)); err == nil && len(b) > 0 {
		return parseFunctionError(b, t.Get(hdrErrorType))
	}
	return &FunctionError{Type: t.Get(hdrErrorType), Message: "the runtime failed while sending the response"}
}

// readLimited reads at most limit bytes; tooLarge reports that more was there.
func readLimited(rc io.Reader, limit int) (body []byte, tooLarge bool, err error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(rc, int64(limit)+1))
	if err != nil {
		return nil, false, err
	}
	if n > int64(limit) {
		_, _ = io.Copy(io.Discard, rc)
		return nil, true, nil
	}
	return buf.Bytes(), false, nil
}

func (inst *instance) handleInitError(w http.ResponseWriter, r *http.Request) {
	body, _, err := readLimited(r.Body, MaxPayloadBytes)
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequest", "read body: "+err.Error())
		return
	}
	inst.mu.Lock()
	if inst.readyClosed {
		inst.mu.Unlock()
		apiError(w, http.StatusForbidden, "InvalidStateTransition", "init is already complete")
		return
	}
	first := inst.initFailure == nil
	if first {
		inst.initFailure = parseFunctionError(body, r.Header.Get(hdrErrorType))
	}
	inst.mu.Unlock()
	if first {
		close(inst.initErr)
	}
	accepted(w)
}

type registerRequest struct {
	Events []string `json:"events"`
}

// handleRegister registers an extension during init. Only SHUTDOWN can be subscribed: aws-lambda-go's
// internal extension subscribes to nothing, and INVOKE events are not emulated.
func (inst *instance) handleRegister(w http.ResponseWriter, r *http.Request) {
	name := r.Header.Get(hdrExtensionName)
	if name == "" {
		apiError(w, http.StatusForbidden, "Extension.InvalidExtensionName", "missing "+hdrExtensionName+" header")
		return
	}
	var req registerRequest
	if b, _, err := readLimited(r.Body, 64<<10); err != nil || (len(bytes.TrimSpace(b)) > 0 && json.Unmarshal(b, &req) != nil) {
		apiError(w, http.StatusBadRequest, "InvalidRequest", "register: body is not {\"events\":[...]}")
		return
	}
	ext := &extension{name: name}
	for _, ev := range req.Events {
		switch ev {
		case "SHUTDOWN":
			ext.shutdown = true
		default:
			apiError(w, http.StatusBadRequest, "Extension.InvalidEventType",
				"runtimeapi emulates only SHUTDOWN events for extensions, not "+strconv.Quote(ev))
			return
		}
	}
	id := newRequestID()
	inst.mu.Lock()
	if inst.readyClosed {
		inst.mu.Unlock()
		apiError(w, http.StatusForbidden, "Extension.RegistrationFailed", "extensions can only register during init")
		return
	}
	inst.exts[id] = ext
	inst.extPending++
	inst.mu.Unlock()

	b, _ := json.Marshal(map[string]string{
		"functionName": inst.opts.FunctionName, "functionVersion": functionVersion, "handler": "bootstrap",
	})
	w.Header()[hdrExtensionID] = []string{id}
	w.Header()[hdrContentType] = jsonContentType
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

type shutdownEvent struct {
	EventType      string `json:"eventType"`
	ShutdownReason string `json:"shutdownReason"`
	DeadlineMs     int64  `json:"deadlineMs"`
}

// handleEventNext parks an extension. As in Lambda, it returns only with an event the extension
// subscribed to; aws-lambda-go's subscribes to none, so its call stays parked until the process ends.
func (inst *instance) handleEventNext(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(hdrExtensionID)
	inst.mu.Lock()
	ext := inst.exts[id]
	if ext == nil {
		inst.mu.Unlock()
		apiError(w, http.StatusForbidden, "Extension.InvalidExtensionIdentifier", "unknown extension identifier "+strconv.Quote(id))
		return
	}
	if !ext.waiting {
		ext.waiting = true
		inst.extPending--
		inst.checkReadyLocked()
	}
	inst.mu.Unlock()

	stopping := inst.stopping
	if !ext.shutdown {
		stopping = nil // never fires
	}
	select {
	case <-stopping:
	case <-r.Context().Done():
		return
	case <-inst.exited:
		return
	}
	inst.mu.Lock()
	reason := inst.stopReason
	inst.mu.Unlock()
	b, _ := json.Marshal(shutdownEvent{
		EventType:      "SHUTDOWN",
		ShutdownReason: reason,
		DeadlineMs:     time.Now().Add(inst.opts.ShutdownGrace).UnixMilli(),
	})
	w.Header()[hdrEventID] = []string{newRequestID()}
	w.Header()[hdrContentType] = jsonContentType
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
