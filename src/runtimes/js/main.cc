// placeholder worker until the runtime lands
int main() { return 1; }
