// Command baseline writes the same two rows as the other size probes, as
// CSV with only the standard library: the zero point for binary sizes.
package main

import (
	"encoding/csv"
	"log"
	"os"
)

func main() {
	f, err := os.Create(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.WriteAll([][]string{{"Entity", "Code", "Year", "consumption"}, {"Africa", "", "1965", "14.28"}, {"Norway", "NOR", "2019", "125.77"}})
	if err := w.Error(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}
