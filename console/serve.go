package console

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Listener is an opened console address.
type Listener struct {
	ln             net.Listener
	certFile, keyF string
	// URL is where the console answers (http or https, the bound port).
	URL string
	// Exposed says the address is beyond loopback (see Config.Exposed).
	Exposed bool
}

// Listen opens addr (host:port; port 0 picks one) for a console. A
// non-loopback address needs an admin token: the console would otherwise
// show the pipeline to the network with no way to restrict it. With
// certFile and keyFile it serves HTTPS.
func Listen(addr, token, certFile, keyFile string) (*Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("console address %q: want HOST:PORT, such as 127.0.0.1:9464", addr)
	}
	if !IsLoopback(host) && token == "" {
		return nil, fmt.Errorf("console address %q is not a loopback address: set %s (the admin token) to serve it beyond this machine, or listen on 127.0.0.1", addr, TokenEnv)
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("console TLS needs both a certificate and a key file")
	}
	if certFile != "" {
		if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			return nil, fmt.Errorf("console TLS: %w", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("console: listen on %s: %w", addr, err)
	}
	scheme := "http"
	if certFile != "" {
		scheme = "https"
	}
	a := ln.Addr().(*net.TCPAddr)
	shown := host
	if shown == "" || a.IP.IsUnspecified() {
		shown = "127.0.0.1"
	}
	exposed := !IsLoopback(host)
	if exposed && (host == "" || a.IP.IsUnspecified()) {
		shown = "0.0.0.0" // every interface: say so
	}
	return &Listener{ln: ln, certFile: certFile, keyF: keyFile, Exposed: exposed,
		URL: fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(shown, fmt.Sprint(a.Port)))}, nil
}

// IsLoopback reports whether host names this machine only.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Serve serves h on l until ctx ends, then shuts down gracefully (5 s).
func (l *Listener) Serve(ctx context.Context, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: 5 * time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	done := make(chan error, 1)
	go func() {
		if l.certFile != "" {
			done <- srv.ServeTLS(l.ln, l.certFile, l.keyF)
			return
		}
		done <- srv.Serve(l.ln)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close closes the listener without serving.
func (l *Listener) Close() error { return l.ln.Close() }
