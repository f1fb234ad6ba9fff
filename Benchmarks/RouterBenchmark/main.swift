print("router benchmark")
