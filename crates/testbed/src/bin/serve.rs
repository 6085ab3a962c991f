//! `weir-testbed-serve --ports tcp:80,udp:80,sctp:80 [--ready-file PATH]`: the per-pod probe
//! server as its own program (the same server `weir testbed serve` runs), for the testbed
//! crate's tests, which cannot build the weir binary.
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = testbed::serve::ServeConfig { ports: Vec::new(), ready_file: None };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = it.next();
        let result = match (arg.as_str(), value) {
            ("--ports", Some(v)) => testbed::serve::parse_ports(v).map(|p| config.ports = p),
            ("--ready-file", Some(v)) => {
                config.ready_file = Some(v.into());
                Ok(())
            }
            _ => {
                eprintln!("usage: weir-testbed-serve --ports tcp:80,udp:80,sctp:80 [--ready-file PATH]");
                return ExitCode::from(2);
            }
        };
        if let Err(e) = result {
            eprintln!("weir-testbed-serve: {e}");
            return ExitCode::from(2);
        }
    }
    match testbed::serve::serve(&config) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("weir-testbed-serve: {e}");
            ExitCode::FAILURE
        }
    }
}
