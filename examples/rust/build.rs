//! Link flags for libbitnet come from pkg-config (`pkg-config --libs bitnet`),
//! which honours PKG_CONFIG_PATH, PKG_CONFIG_LIBDIR and PKG_CONFIG_SYSROOT_DIR,
//! so a staged install (meson install --destdir) works as well as /usr.
//! Set BITNET_NO_PKG_CONFIG=1 to skip pkg-config and link -lbitnet from the
//! default search path (plus BITNET_LIB_DIR when set).

use std::env;
use std::process::Command;

fn main() {
    for var in [
        "PKG_CONFIG",
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_LIBDIR",
        "PKG_CONFIG_SYSROOT_DIR",
        "BITNET_NO_PKG_CONFIG",
        "BITNET_LIB_DIR",
    ] {
        println!("cargo:rerun-if-env-changed={}", var);
    }
    println!("cargo:rerun-if-changed=build.rs");

    if let Ok(dir) = env::var("BITNET_LIB_DIR") {
        println!("cargo:rustc-link-search=native={}", dir);
    }
    if env::var_os("BITNET_NO_PKG_CONFIG").is_some() {
        println!("cargo:rustc-link-lib=dylib=bitnet");
        return;
    }

    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let out = Command::new(&pkg_config)
        .args(["--libs", "bitnet"])
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => panic!(
            "`{} --libs bitnet` failed: {}\nInstall libbitnet (its bitnet.pc) or set \
             PKG_CONFIG_PATH; or set BITNET_NO_PKG_CONFIG=1 [BITNET_LIB_DIR=...]",
            pkg_config,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!(
            "cannot run `{}`: {}; install pkg-config or set BITNET_NO_PKG_CONFIG=1",
            pkg_config, e
        ),
    };
    let flags = String::from_utf8(out.stdout).expect("pkg-config output is not UTF-8");
    let mut linked = false;
    for flag in flags.split_whitespace() {
        if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={}", dir);
        } else if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={}", lib);
            linked |= lib == "bitnet";
        } else if flag.starts_with("-Wl,") || flag == "-pthread" {
            println!("cargo:rustc-link-arg={}", flag);
        }
    }
    if !linked {
        println!("cargo:rustc-link-lib=dylib=bitnet");
    }
}
