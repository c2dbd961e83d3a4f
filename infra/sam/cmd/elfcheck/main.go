// Command elfcheck exits non-zero unless every file named on the command line is a static arm64 ELF
// executable, the only kind of bootstrap provided.al2023 on arm64 runs. sam.mk runs it after sam build.
package main

import (
	"fmt"
	"os"

	"github.com/streambridge/kinesis-pulsar/infra/sam"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: elfcheck FILE...")
		os.Exit(2)
	}
	status := 0
	for _, path := range os.Args[1:] {
		if err := sam.CheckLambdaBinary(path); err != nil {
			fmt.Fprintln(os.Stderr, "elfcheck:", err)
			status = 1
			continue
		}
		fmt.Printf("%s: ELF 64-bit LSB executable, ARM aarch64, statically linked\n", path)
	}
	os.Exit(status)
}
