// Package logging builds the function's slog logger from Lambda's advanced logging controls.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	smithylog "github.com/aws/smithy-go/logging"
)

// New returns a logger writing to w. The format is JSON unless AWS_LAMBDA_LOG_FORMAT is Text. The
// level comes from AWS_LAMBDA_LOG_LEVEL, else LOG_LEVEL, else INFO. JSON lines carry "level" and
// "timestamp", the keys Lambda's log-level filtering reads.
func New(w io.Writer, getenv func(string) string) *slog.Logger {
	level := Level(getenv("AWS_LAMBDA_LOG_LEVEL"))
	if getenv("AWS_LAMBDA_LOG_LEVEL") == "" {
		level = Level(getenv("LOG_LEVEL"))
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			a.Key = "timestamp"
		}
		return a
	}}
	if strings.EqualFold(getenv("AWS_LAMBDA_LOG_FORMAT"), "text") {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Level maps Lambda's level names (TRACE, DEBUG, INFO, WARN, ERROR, FATAL) to slog levels; anything
// else is INFO.
func Level(name string) slog.Level {
	switch strings.ToUpper(strings.TrimSpace(name)) {
	case "TRACE", "DEBUG":
		return slog.LevelDebug
	case "WARN", "WARNING":
		return slog.LevelWarn
	case "ERROR", "FATAL":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// SDK returns a logger for the AWS SDK that writes through l. The SDK's default logger prints plain
// text to stderr (an IMDS fallback, a retry quota warning), which would break the one-JSON-object-per-line
// stream that CloudWatch Logs Insights and Lambda's log-level filtering read.
func SDK(l *slog.Logger) smithylog.Logger {
	return smithylog.LoggerFunc(func(c smithylog.Classification, format string, v ...any) {
		level := slog.LevelInfo
		switch c {
		case smithylog.Warn:
			level = slog.LevelWarn
		case smithylog.Debug:
			level = slog.LevelDebug
		}
		l.Log(context.Background(), level, fmt.Sprintf(format, v...), "source", "aws-sdk")
	})
}
