// Package runtimeapi drives the real compiled bootstrap of a provided.al2023 Go function on this host,
// without Docker, the way Lambda does: tests, benchmarks, make invoke and the demo feed it Kinesis
// events through one of two drivers with the same Result type.
//
// Env (Start) is an in-process Lambda Runtime API server on 127.0.0.1 plus the lifecycle of one
// execution environment around one child process. RIE (StartRIE) runs AWS's Runtime Interface Emulator,
// taken from the aws-sam-cli PyPI package in the project venv, as a reference to check Env against.
//
// # What Env reproduces
//
//   - The Runtime API used by aws-lambda-go: GET /2018-06-01/runtime/invocation/next blocks until an
//     event exists and answers with Lambda-Runtime-Aws-Request-Id (a fresh UUID per invocation),
//     Lambda-Runtime-Deadline-Ms (epoch ms when the event is handed over, plus the function timeout),
//     Lambda-Runtime-Invoked-Function-Arn and Lambda-Runtime-Trace-Id; POST .../{id}/response and
//     .../{id}/error answer 202; POST /2018-06-01/runtime/init/error answers 202 and fails init. A
//     response over 6 MB gets 413 and becomes a Function.ResponseSizeTooLarge error. Unknown paths get
//     404 with the list of emulated endpoints.
//   - The Extensions API subset of lambda.WithEnableSIGTERM: POST /2020-01-01/extension/register (200
//     plus Lambda-Extension-Identifier) and GET /2020-01-01/extension/event/next. As in Lambda,
//     event/next returns only events the extension subscribed to: aws-lambda-go subscribes to none (it
//     logs "reached expected unreachable code" if the call ever returns), so its call stays parked until
//     the process ends. An extension that subscribes to SHUTDOWN gets {"eventType":"SHUTDOWN",...} on
//     shutdown. INVOKE subscriptions are refused (not emulated).
//   - The environment Lambda gives the function: AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_FUNCTION_NAME,
//     AWS_LAMBDA_FUNCTION_MEMORY_SIZE, AWS_LAMBDA_FUNCTION_VERSION ($LATEST), AWS_LAMBDA_LOG_GROUP_NAME,
//     AWS_LAMBDA_LOG_STREAM_NAME, AWS_LAMBDA_INITIALIZATION_TYPE, AWS_REGION, AWS_DEFAULT_REGION,
//     _HANDLER=bootstrap, LAMBDA_TASK_ROOT (the binary's directory, also the working directory),
//     LAMBDA_RUNTIME_DIR, TZ=:UTC, LANG and PATH, then Options.Env. Nothing of the parent's environment
//     passes unless Options.InheritEnv. AWS_EC2_METADATA_DISABLED=true stands for Lambda having no
//     instance metadata service, so the SDK never reaches this host's.
//   - The lifecycle: init ends when the runtime and every registered extension have called their next
//     (bounded by Options.InitTimeout, 10 s); one invocation at a time; a timeout, a crash or an init
//     failure resets the environment, and the next Invoke starts a fresh process by itself (a cold
//     start, reported in Result.ColdStart); shutdown sends SIGTERM only when an extension registered,
//     then SIGKILL after 500 ms; a timeout resets like a shutdown does (SIGTERM first, if registered).
//   - An invocation is complete only when the runtime calls /next again, and Lambda holds it to its
//     deadline: a runtime that answers but does not come back by then (plus 100 ms) is reset, and the
//     waiting event goes to a fresh process.
//   - Freeze and thaw with SIGSTOP and SIGCONT, by hand (Freeze, Thaw) or between every invocation
//     (Options.FreezeBetweenInvokes). A frozen process's timers and sockets stall as in Lambda: broker
//     keep-alives go unanswered.
//
// # What it does not
//
//   - No isolation: no network or PID namespace, no read-only file system, no /tmp quota; the process
//     runs as the current user with this host's CPUs (Lambda gives CPU in proportion to memory).
//   - No memory limit. RLIMIT_AS would kill a Go program long before its resident set reaches the limit
//     (the runtime reserves much more address space than it uses), so instead PeakRSS reports the peak
//     resident set (VmHWM, or ru_maxrss after exit) for the memory benchmarks to compare with MemoryMB.
//   - No billing, no concurrency across environments (start several Envs for that), no INVOKE events
//     for extensions, no Telemetry or Logs API, no response streaming, no SnapStart, and no credentials:
//     pass AWS_ACCESS_KEY_ID and the like in Options.Env.
//   - Lambda's own log lines (START, END, REPORT) are written only when Options.Platform is set.
//
// The child runs in its own process group and gets SIGKILL from the kernel if the driving process dies
// (Linux), so an aborted test leaves nothing behind; a test still calls Shutdown in t.Cleanup.
//
// # Cost
//
// Every invocation is two HTTP exchanges over loopback, as in Lambda; the server's own work is
// negligible next to them. Measure with
//
//	go test -run '^$' -bench . -benchtime 2000x ./infra/runtimeapi                      (Env)
//	go test -tags integration -run '^$' -bench BenchmarkDrivers -benchtime 2000x ./infra/runtimeapi
//
// # The RIE driver
//
// FindRIE locates aws-lambda-rie-x86_64 or -arm64 (for the host architecture) under
// <venv>/lib/python3*/site-packages/samcli/local/rapid/, with venv from KP_VENV or <repo>/.cache/venv.
// StartRIE runs it with an explicit environment (the RIE forwards its whole environment to the
// function), AWS_LAMBDA_FUNCTION_TIMEOUT in whole seconds, and --log-level info, whose lines give the
// request id, the cold start and the init duration. See RIE for how its answers map onto Result.
package runtimeapi
