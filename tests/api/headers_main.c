/* Links one C and one C++ translation unit per public header; compiling them is the test. */
int main(void)
{
	return 0;
}
