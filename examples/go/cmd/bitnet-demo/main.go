// Command bitnet-demo generates text with libbitnet from Go.
//
//	bitnet-demo -m model.gguf -p "Once upon a time" -n 64 [--temp 0] [-t N] [-c N] [-s SEED] [--ids]
//
// It prints the generated text (not the prompt) as it streams; --ids prints
// the generated token ids on one line instead.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"bitnet"
)

func main() {
	modelPath := flag.String("m", "", "GGUF model file")
	prompt := flag.String("p", "", "prompt text")
	n := flag.Int("n", 64, "tokens to generate")
	threads := flag.Int("t", 0, "threads (0: all CPUs)")
	nctx := flag.Int("c", 0, "context length (0: model's)")
	seed := flag.Uint64("s", 0, "sampler seed")
	temp := flag.Float64("temp", 0.8, "temperature (0: greedy)")
	ids := flag.Bool("ids", false, "print generated token ids, not text")
	flag.Parse()
	if *modelPath == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*modelPath, *prompt, *n, *threads, *nctx, *seed, float32(*temp), *ids); err != nil {
		fmt.Fprintf(os.Stderr, "bitnet-demo: %v\n", err)
		os.Exit(1)
	}
}

func run(path, prompt string, n, threads, nctx int, seed uint64, temp float32, ids bool) error {
	model, err := bitnet.Load(path)
	if err != nil {
		return err
	}
	defer model.Close()
	ctx, err := model.NewContext(bitnet.ContextOptions{NContext: nctx, NThreads: threads})
	if err != nil {
		return err
	}
	defer ctx.Close()
	opts := bitnet.DefaultSampler()
	opts.Temperature, opts.Seed = temp, seed
	smp, err := model.NewSampler(opts)
	if err != nil {
		return err
	}
	defer smp.Close()
	toks, err := model.Tokenize(prompt, true, true)
	if err != nil {
		return err
	}
	g, err := bitnet.Generate(ctx, smp, toks, n)
	if err != nil {
		return err
	}
	defer g.Close()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	var got []string
	for g.Next() {
		if ids {
			if g.Token() >= 0 {
				got = append(got, strconv.Itoa(int(g.Token())))
			}
			continue
		}
		out.WriteString(g.Text())
		out.Flush()
	}
	if err := g.Err(); err != nil {
		return err
	}
	if ids {
		out.WriteString(strings.Join(got, " "))
	}
	out.WriteString("\n")
	return nil
}
