// Package docscheck holds only tests: they check, offline, that what the README and docs/ tell a reader
// to run or open exists on a fresh clone (make targets, files and directories, links and their anchors,
// the programs of `go run` commands), and that `make help` lists every target.
package docscheck
