package state

// jobsSchema is filled in by the jobs work (runs and their lifecycle).
const jobsSchema = ``
