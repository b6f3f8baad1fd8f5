module bitnet

go 1.19
